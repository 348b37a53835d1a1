(function(){
function val(c){var v=c.getAttribute('data-v');return v===null?c.textContent.trim():v;}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var b=t.tBodies[t.tBodies.length-1],rows=Array.prototype.slice.call(b.rows);
  var asc=th.getAttribute('data-asc')!=='1';
  th.setAttribute('data-asc',asc?'1':'0');
  rows.sort(function(r,s){var p=r.cells[i],q=s.cells[i],d;
   if(p.hasAttribute('data-v')&&q.hasAttribute('data-v')){var a=parseFloat(val(p)),c=parseFloat(val(q));
    d=(isNaN(a)?-Infinity:a)-(isNaN(c)?-Infinity:c);if(isNaN(d))d=0;}
   else d=val(p).localeCompare(val(q));
   return asc?d:-d;});
  rows.forEach(function(r){b.appendChild(r);});});});});
var btn=document.getElementById('download-json');
if(btn){btn.addEventListener('click',function(){
 var s=document.getElementById('modelport-result').textContent,a=document.createElement('a');
 a.href=URL.createObjectURL(new Blob([s],{type:'application/json'}));a.download=btn.getAttribute('data-name');
 a.click();});}
})();
